/* model_settings.h - the model's settings, listed once.
 *
 * A base header (no .c of its own): config.h declares gi_config.model from
 * it, below every model file; model_spec.c makes a gi_model_spec from a config.
 *
 * Each model setting is one row of GI_MODEL_SETTINGS. From this list come:
 *   - the fields of gi_config.model (config.h) and of gi_model_spec (model.h),
 *     same name, same C type;
 *   - the config key rows "model.<field>" with default, bounds and meaning
 *     (config.c: parsing, validation, reference, YAML dump);
 *   - gi_model_spec_from_config (copying config -> spec; model_spec.c);
 *   - the resume comparison (gi_model_spec_diff names what differs by key);
 *   - the checkpoint attributes (checkpoint.c saves and loads each row under
 *     its field name: ints as int64, floats as float64).
 * Adding a model setting is therefore one line here (plus the code in model.c
 * that uses it). Rows are in the order of docs/CONFIG.md.
 *
 * Columns: X(kind, field, default, lo, lo_open, hi, hi_open, names, meaning)
 *   kind     INT | FLOAT | ENUM  (C type int, float, int)
 *   default  YAML text, parsed like a user value
 *   lo, hi   bounds (INT, FLOAT); lo_open / hi_open: 1 = bound excluded (FLOAT)
 *   names    ENUM: the NULL-terminated name table of enum_names.h, index = value
 *
 * Data-derived sizes (n_genes, n_donors, n_labels) are not settings: they come
 * from the sample table and the anatomy and are declared in gi_model_spec.
 */
#ifndef GENEINR_MODEL_SETTINGS_H
#define GENEINR_MODEL_SETTINGS_H

#define GI_MODEL_SETTINGS(X)                                                                                    \
    X(ENUM, arch, "siren", 0, 0, 0, 0, GI_ARCH_NAMES,                                                              \
      "network type: SIREN or ReLU MLP on random Fourier features")                                             \
    X(INT, hidden_layers, "3", 1, 0, 64, 0, NULL, "number of hidden layers")                                    \
    X(INT, width, "128", 1, 0, 4096, 0, NULL, "units per hidden layer")                                         \
    X(FLOAT, omega0, "30", 0, 1, 10000, 0, NULL, "SIREN first-layer frequency")                                 \
    X(FLOAT, omega_hidden, "30", 0, 1, 10000, 0, NULL, "SIREN hidden-layer frequency")                          \
    X(INT, fourier_features, "64", 1, 0, 4096, 0, NULL, "number of random frequencies (fourier arch)")          \
    X(FLOAT, fourier_scale, "2.0", 0, 1, 1000, 0, NULL,                                                         \
      "std of the random frequencies, cycles per unit of normalised coordinates (fourier arch)")                \
    X(ENUM, gene_mode, "factorized", 0, 0, 0, 0, GI_GENE_MODE_NAMES,                                               \
      "gene enters as an input (concat) or selects an output row (factorized)")                                 \
    X(ENUM, gene_code, "embedding", 0, 0, 0, 0, GI_GENE_CODE_NAMES,                                                \
      "gene input code in concat mode: learned embedding or sinusoidal spectral code")                          \
    X(INT, gene_dim, "16", 1, 0, 1024, 0, NULL, "learned gene embedding size (concat + embedding)")             \
    X(INT, gene_frequencies, "11", 1, 0, 30, 0, NULL, "sinusoidal frequencies of the spectral gene code")       \
    X(INT, donor_dim, "4", 0, 0, 256, 0, NULL, "donor embedding size; 0 = no donor input")                      \
    X(INT, anatomy_dim, "4", 1, 0, 256, 0, NULL, "anatomical label embedding size (with data.anatomy)")

/* C type of a kind. */
#define GI_SETTING_CTYPE_INT int
#define GI_SETTING_CTYPE_FLOAT float
#define GI_SETTING_CTYPE_ENUM int

/* A struct member declaration per row: `int arch; int hidden_layers; ...` */
#define GI_SETTING_MEMBER(kind, field, ...) GI_SETTING_CTYPE_##kind field;

#endif
