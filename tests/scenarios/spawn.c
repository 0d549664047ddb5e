/* A parent that forks from two functions and reaps only one's children:
 * with --stacks, the report names the other. Built with frame pointers
 * and debug information, as a service built for profiling would be.
 * Prints `parent P child C` for the child it leaks, then sleeps SECONDS.
 *
 * usage: spawn SECONDS
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

__attribute__((noinline)) static void spawn_reaped(void) {
    pid_t pid = fork();
    if (pid == 0)
        _exit(0);
    waitpid(pid, NULL, 0);
}

__attribute__((noinline)) static pid_t spawn_leaked(void) {
    pid_t pid = fork();
    if (pid == 0)
        _exit(0);
    return pid;
}

int main(int argc, char **argv) {
    double seconds = argc > 1 ? atof(argv[1]) : 5;
    for (int i = 0; i < 3; i++)
        spawn_reaped();
    pid_t child = spawn_leaked();
    for (int i = 0; i < 3; i++)
        spawn_reaped();
    printf("parent %d child %d\n", getpid(), child);
    fflush(stdout);
    usleep((useconds_t)(seconds * 1e6));
    return 0;
}
