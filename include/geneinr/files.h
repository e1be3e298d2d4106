/* files.h - small file-name and file-system helpers shared by the writers. */
#ifndef GENEINR_FILES_H
#define GENEINR_FILES_H

/* Does s end with suffix? */
int gi_ends_with(const char *s, const char *suffix);

/* Remove a half-written output, but only a regular file (never, say, /dev/full). */
void gi_remove_partial(const char *path);

#endif
