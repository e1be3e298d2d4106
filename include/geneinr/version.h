/* version.h - the geneinr version, recorded in every file it writes
 * (the geneinr_version attribute of atlases and checkpoints). */
#ifndef GENEINR_VERSION_H
#define GENEINR_VERSION_H

#define GENEINR_VERSION "0.1.0"

#endif
