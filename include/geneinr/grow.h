/* grow.h - capacity growth of a malloc'd array, written once.
 *
 * Arrays that grow as a file is read (table rows, donors, probes, ...) double
 * their capacity, so n appends cost O(n) copies in all.
 */
#ifndef GENEINR_GROW_H
#define GENEINR_GROW_H

#include <stddef.h>

/* Room for at least need elements of size sz in the array whose pointer is at
 * parr (capacity *cap elements, doubled from 64 as needed). 0, or -1 when out
 * of memory (the array and *cap untouched). */
int gi_grow(void *parr, size_t *cap, size_t need, size_t sz);

/* GI_GROW(array, cap, need): gi_grow for a typed array and its size_t cap. */
#define GI_GROW(arr, cap, need) gi_grow(&(arr), &(cap), (need), sizeof *(arr))

#endif
