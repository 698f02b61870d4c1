// zlib (zlib1g-dev): gzip reading for the IDX files, deflate and CRC-32 for PNG.
#include <zlib.h>
