/* placeholder so the module library is never empty */
typedef int lp_codec_placeholder_t;
