/* config_internal.h: how config.c and config_compare.c reach an option's
 * field in a dbp_config through its descriptor (config.h's dbp_options). */
#ifndef DBP_CONFIG_INTERNAL_H
#define DBP_CONFIG_INTERNAL_H

#include <stddef.h>

#include "config.h"

#define OFF(field) offsetof(dbp_config, field)
#define FIELD(c, o, type) ((type *)((char *)(c) + (o)->offset))
#define CFIELD(c, o, type) ((const type *)((const char *)(c) + (o)->offset))

#endif
