/* One parent leaks N children at once: fork, _exit, never reaped while it
 * holds them. Prints `parent P`, then `forked N` once all have exited;
 * holds them for SECONDS, then reaps them all and exits. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 1000;
    double hold = argc > 2 ? atof(argv[2]) : 5.0;
    printf("parent %d\n", getpid());
    fflush(stdout);
    for (long i = 0; i < n; i++) {
        pid_t pid = fork();
        if (pid < 0) {
            perror("fork");
            return 1;
        }
        if (pid == 0)
            _exit(0);
    }
    printf("forked %ld\n", n);
    fflush(stdout);
    usleep((useconds_t)(hold * 1e6));
    while (waitpid(-1, NULL, 0) > 0)
        ;
    return 0;
}
