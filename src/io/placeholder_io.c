/* placeholder so the module library is never empty */
typedef int lp_io_placeholder_t;
