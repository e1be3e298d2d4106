/* stop.c - graceful stop on SIGTERM / SIGINT / SIGUSR1 (see stop.h). */
#include "geneinr/stop.h"

#include <signal.h>
#include <string.h>

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
    stop_signal = sig;
}

static void set_handler(void (*h)(int))
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = h;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART; /* MPI and file I/O continue where they were */
    sigaction(SIGTERM, &sa, NULL);
    /* SIGINT only where it is not ignored: a job started with nohup or in
     * the background of a script has it ignored and keeps it so (Ctrl-C of
     * the terminal is not meant for it). */
    struct sigaction old;
    if (sigaction(SIGINT, NULL, &old) == 0 && old.sa_handler != SIG_IGN)
        sigaction(SIGINT, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
}

void gi_stop_install(void)
{
    set_handler(on_signal);
}

void gi_stop_uninstall(void)
{
    set_handler(SIG_DFL);
    /* A signal that came while installed is still honoured by whoever asks. */
}

int gi_stop_pending(void)
{
    return stop_signal != 0;
}

int gi_stop_signal(void)
{
    return (int)stop_signal;
}

const char *gi_stop_signal_name(void)
{
    return gi_stop_name_of((int)stop_signal);
}

const char *gi_stop_name_of(int s)
{
    return s == SIGTERM ? "SIGTERM" : s == SIGINT ? "SIGINT" : s == SIGUSR1 ? "SIGUSR1" : s ? "a signal" : "";
}
