/* Raspberry Pi Pico + a PDM MEMS microphone breakout (e.g. MP34DT01 / SPH0641, L/R to GND). */
#ifndef ES_BOARD_PICO_H
#define ES_BOARD_PICO_H
#define ES_BOARD_NAME "pico"
#define ES_BOARD_PDM_DATA_PIN 2 /* GP2 (pin 4): mic DATA */
#define ES_BOARD_PDM_CLK_PIN 3  /* GP3 (pin 5): mic CLK */
#define ES_BOARD_LED_PIN 25     /* the Pico's green LED, on GP25 */
#endif
