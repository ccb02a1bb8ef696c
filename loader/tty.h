/* Raw mode for the interactive console, restored on every exit path. */
#ifndef MBALL_TTY_H
#define MBALL_TTY_H
int tty_raw(int fd);     /* 0 or -1 */
void tty_restore(void);  /* idempotent; safe from atexit */
#endif
