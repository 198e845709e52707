#define _GNU_SOURCE
#include "CIOUring.h"
