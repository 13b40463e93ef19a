/*
 * es_common.h — what every part of the earshot firmware core shares: the status enum.
 *
 * Every fallible es_ function returns an EsStatus; ES_OK is 0 so `if (st != ES_OK)` reads
 * naturally. es_status_str gives the enum's name ("ES_ERR_TIME") for logs and the serial
 * protocol; it never returns NULL.
 */
#ifndef ES_COMMON_H
#define ES_COMMON_H

typedef enum {
    ES_OK = 0,          /* success */
    ES_ERR_ARG,         /* NULL pointer or a parameter out of its documented range */
    ES_ERR_SHAPE,       /* a length or tensor shape does not match what was configured */
    ES_ERR_TIME,        /* a timestamp went backwards */
    ES_ERR_RANGE,       /* a value outside its representable range (e.g. a score level > 256) */
    ES_ERR_UNSUPPORTED, /* valid, but not something this build implements */
    ES_ERR_IO           /* reading or writing a file or device failed */
} EsStatus;

#define ES_STATUS_COUNT 7 /* number of EsStatus values (the string table is checked against it) */

/* Name of a status ("ES_OK", "ES_ERR_ARG", ...); "ES_ERR_?" for a value outside the enum. */
const char *es_status_str(EsStatus status);

#endif /* ES_COMMON_H */
