/* placeholder so the module library is never empty */
typedef int lp_engine_placeholder_t;
