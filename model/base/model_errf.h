/* model_errf: the one printf-into-err helper every file of model/ uses (model_errf.c). */
#ifndef IEVO_MODEL_ERRF_H
#define IEVO_MODEL_ERRF_H

#include <stddef.h>

/* Fills err (if any) printf-style; always returns -1 so callers can `return model_errf(...)`. */
int model_errf(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
