/* pico-sdk stand-in for compile checks: see es_sdk_decls.h */
#include "../es_sdk_decls.h"
