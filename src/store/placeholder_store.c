/* placeholder so the module library is never empty */
typedef int lp_store_placeholder_t;
