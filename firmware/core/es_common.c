/* es_common.c — the EsStatus name table. */
#include "es_common.h"

static const char *const STATUS_NAMES[] = {
    [ES_OK] = "ES_OK",
    [ES_ERR_ARG] = "ES_ERR_ARG",
    [ES_ERR_SHAPE] = "ES_ERR_SHAPE",
    [ES_ERR_TIME] = "ES_ERR_TIME",
    [ES_ERR_RANGE] = "ES_ERR_RANGE",
    [ES_ERR_UNSUPPORTED] = "ES_ERR_UNSUPPORTED",
    [ES_ERR_IO] = "ES_ERR_IO",
};

_Static_assert(sizeof STATUS_NAMES / sizeof STATUS_NAMES[0] == ES_STATUS_COUNT,
               "STATUS_NAMES must name every EsStatus");
_Static_assert(ES_ERR_IO + 1 == ES_STATUS_COUNT, "ES_STATUS_COUNT must follow the last EsStatus");

const char *es_status_str(EsStatus status)
{
    unsigned idx = (unsigned)status;
    if (idx >= ES_STATUS_COUNT) {
        return "ES_ERR_?";
    }
    return STATUS_NAMES[idx];
}
