# Toolchain for the Cortex-M cross builds of the firmware core (arm-none-eabi-gcc, newlib).
#   -DCMAKE_TOOLCHAIN_FILE=firmware/cmake/arm-none-eabi.cmake -DES_CPU=<cpu>
# ES_CPU: cortex-m0plus (RP2040, default), cortex-m4 (M4F, FPU), cortex-m7 (i.MX RT1062 class).
set(CMAKE_SYSTEM_NAME Generic)
set(CMAKE_SYSTEM_PROCESSOR arm)
set(CMAKE_C_COMPILER arm-none-eabi-gcc)
set(CMAKE_TRY_COMPILE_TARGET_TYPE STATIC_LIBRARY)

set(ES_CPU "cortex-m0plus" CACHE STRING "target CPU: cortex-m0plus, cortex-m4 or cortex-m7")
set_property(CACHE ES_CPU PROPERTY STRINGS cortex-m0plus cortex-m4 cortex-m7)
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES ES_CPU)

if(ES_CPU STREQUAL "cortex-m0plus")
    set(ES_CPU_FLAGS "-mcpu=cortex-m0plus -mthumb -mfloat-abi=soft")
elseif(ES_CPU STREQUAL "cortex-m4")
    set(ES_CPU_FLAGS "-mcpu=cortex-m4 -mthumb -mfpu=fpv4-sp-d16 -mfloat-abi=hard")
elseif(ES_CPU STREQUAL "cortex-m7")
    set(ES_CPU_FLAGS "-mcpu=cortex-m7 -mthumb -mfpu=fpv5-d16 -mfloat-abi=hard")
else()
    message(FATAL_ERROR "ES_CPU=${ES_CPU}: choose cortex-m0plus, cortex-m4 or cortex-m7")
endif()

set(CMAKE_C_FLAGS_INIT "${ES_CPU_FLAGS} -ffunction-sections -fdata-sections")
# CMake appends its own "-O3 -DNDEBUG" to *_RELEASE_INIT for GCC; set the cache entry instead.
set(CMAKE_C_FLAGS_RELEASE "-Os -DNDEBUG" CACHE STRING "flags for the size-optimised device build")
set(CMAKE_EXE_LINKER_FLAGS_INIT "${ES_CPU_FLAGS}")
set(CMAKE_BUILD_TYPE Release CACHE STRING "")

set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
