/* A storm of properly reaped children: fork, _exit, waitpid, N times. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 1000;
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
        if (waitpid(pid, NULL, 0) != pid) {
            perror("waitpid");
            return 1;
        }
    }
    return 0;
}
