/* A child whose main thread exits first (pthread_exit in main) while another
 * thread lives on for SECONDS: the process is only reapable once that thread
 * is gone, and the zombie clock must start then. The parent never reaps
 * until it is killed. Prints `parent P child C`. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static double seconds = 1.5;

static void *worker(void *arg) {
    (void)arg;
    usleep((useconds_t)(seconds * 1e6));
    return NULL;
}

int main(int argc, char **argv) {
    if (argc > 1)
        seconds = atof(argv[1]);
    pid_t pid = fork();
    if (pid < 0)
        return 1;
    if (pid == 0) {
        pthread_t t;
        if (pthread_create(&t, NULL, worker, NULL) != 0)
            _exit(1);
        pthread_exit(NULL);
    }
    printf("parent %d child %d\n", getpid(), pid);
    fflush(stdout);
    for (;;)
        pause();
}
