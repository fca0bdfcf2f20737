/* placeholder so the module library is never empty */
typedef int lp_config_placeholder_t;
