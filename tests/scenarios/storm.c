/* A storm of properly reaped children: fork, _exit, waitpid, N times.
 * `storm N PROGRAM [ARG...]`: each child execs PROGRAM instead of
 * exiting, and must exit 0 (an exec-heavy storm). */
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 1000;
    char **program = argc > 2 ? argv + 2 : NULL;
    printf("parent %d\n", getpid());
    fflush(stdout);
    for (long i = 0; i < n; i++) {
        pid_t pid = fork();
        if (pid < 0) {
            perror("fork");
            return 1;
        }
        if (pid == 0) {
            if (program) {
                execv(program[0], program);
                perror("execv");
                _exit(127);
            }
            _exit(0);
        }
        int status;
        if (waitpid(pid, &status, 0) != pid) {
            perror("waitpid");
            return 1;
        }
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            fprintf(stderr, "child %d: wait status %#x\n", pid, status);
            return 1;
        }
    }
    return 0;
}
