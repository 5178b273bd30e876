/* TEMP STUB (the metrics server is being written): records nothing, serves nothing. */
#include <stdlib.h>
#include <stdio.h>
#include "metrics.h"
int metrics_server_start(metrics_server **out, const char *addr, char *err, size_t errlen) {
    (void)addr; *out = NULL; snprintf(err, errlen, "metrics server not built yet"); return -1;
}
void metrics_publish(metrics_server *m, const metrics_snapshot *snap) { (void)m; (void)snap; }
int metrics_server_port(const metrics_server *m) { (void)m; return 0; }
void metrics_server_stop(metrics_server *m) { (void)m; }
char *metrics_render(const metrics_snapshot *snap, size_t *len) { (void)snap; *len = 0; return NULL; }
