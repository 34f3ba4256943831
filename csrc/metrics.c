/* metrics.c: counter names and initialisation. */
#include "metrics.h"

const char *const dbp_counter_names[DBP_M_COUNT] = {
    "checkouts",     "waits",    "timeouts", "connects", "connect_failures", "pre_ping_failures",
    "invalidations", "recycles", "leaks",    "queries",  "query_errors",
};

void dbp_metrics_init(dbp_metrics *m)
{
    for (int i = 0; i < DBP_M_COUNT; i++)
        atomic_init(&m->counters[i], 0);
}
