/* event_source_internal: what the loaders (movielens.c, jsonl_source.c, synthetic.c) share,
 * implemented in event_source.c: the growable event array, the string arena with interning,
 * and the stable sort by event time. Not for use outside the event sources.
 *
 * Why an arena: 10 M events must not cost 10 M mallocs. Each distinct string is stored once in
 * large chunks, and events point at it, so equal ids are also equal pointers within one list.
 */
#ifndef IEVO_EVENT_SOURCE_INTERNAL_H
#define IEVO_EVENT_SOURCE_INTERNAL_H

#include "event_source.h"

/* Prepares an empty list (allocates the arena). Returns 0, or -1 on ENOMEM. */
int event_list_init(event_list *l);
/* Makes room for n events in total (exact: no doubling). Returns 0, or -1 on ENOMEM. */
int event_list_reserve(event_list *l, size_t n);
/* Appends a zeroed event (topic = SOURCE_NO_TOPIC) and returns it, or NULL on ENOMEM. */
source_event *event_list_push(event_list *l);

/* Returns the list's single copy of s[0..n) (NUL-terminated), or NULL on ENOMEM. s must not
 * contain a NUL byte (the loaders reject such strings). */
const char *event_list_intern(event_list *l, const char *s, size_t n);
/* Stores s[0..n) without looking for an existing copy: for strings known to be new (synthetic
 * user ids). Such strings are not found by later event_list_intern calls. */
const char *event_list_store(event_list *l, const char *s, size_t n);

/* Sorts by ts, ties kept in their current order. Returns 0, or -1 on ENOMEM. */
int event_list_sort_stable(event_list *l);

#endif
