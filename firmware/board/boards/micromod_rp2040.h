/*
 * SparkFun MicroMod RP2040 processor on the MicroMod Machine Learning carrier (on-board PDM mic).
 * The MicroMod connector routes the carrier's PDM mic to the processor's PDM_CLK / PDM_DATA
 * (I2S_WS / I2S_SDI) pins; the GPIO numbers below are those pins on the RP2040 processor board.
 * NOT verified on hardware here: check them against SparkFun's MicroMod RP2040 pinout before
 * flashing, and override with -DES_PDM_CLK_PIN=.. -DES_PDM_DATA_PIN=.. (docs/firmware-board.md).
 */
#ifndef ES_BOARD_MICROMOD_RP2040_H
#define ES_BOARD_MICROMOD_RP2040_H
#define ES_BOARD_NAME "micromod_rp2040"
#define ES_BOARD_PDM_DATA_PIN 25 /* MicroMod PDM_DATA (I2S_SDI) */
#define ES_BOARD_PDM_CLK_PIN 24  /* MicroMod PDM_CLK (I2S_WS) */
#define ES_BOARD_LED_PIN 17      /* the processor board's STAT LED */
#endif
