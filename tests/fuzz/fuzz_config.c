/* fuzz_config.c - libFuzzer target: the YAML config loader on arbitrary text.
 * Any input must give 0 or -1 with a message, never a crash, a leak or UB. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "geneinr/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    gi_config c;
    gi_err err;
    if (gi_config_load_text(&c, text, "fuzz.yaml", &err) == 0) {
        /* A config that loads must dump to YAML that loads to the same config. */
        char *yaml = gi_config_to_yaml(&c);
        gi_config back;
        if (!yaml || gi_config_load_text(&back, yaml, "dump", &err) != 0)
            abort();
        free(yaml);
    } else if (!err.msg[0]) {
        abort(); /* a failure without a message */
    }
    free(text);
    return 0;
}
