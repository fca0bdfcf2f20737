#include <stdio.h>

int main(void) {
    puts("leadpulse " LP_VERSION);
    return 0;
}
