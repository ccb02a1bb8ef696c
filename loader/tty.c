#include "tty.h"
#include "util.h"
#include <stdbool.h>
#include <stdlib.h>
#include <termios.h>
#include <unistd.h>

static struct termios saved;
static int saved_fd = -1;

void tty_restore(void)
{
	if (saved_fd < 0)
		return;
	tcsetattr(saved_fd, TCSAFLUSH, &saved);
	saved_fd = -1;
	mb_raw_tty = false;
}

int tty_raw(int fd)
{
	struct termios t;
	static bool registered;
	if (tcgetattr(fd, &saved) < 0)
		return -1;
	t = saved;
	/* cfmakeraw, but keep output post-processing so our own "\n" messages still work. */
	cfmakeraw(&t);
	t.c_oflag |= OPOST | ONLCR;
	if (tcsetattr(fd, TCSAFLUSH, &t) < 0)
		return -1;
	saved_fd = fd;
	mb_raw_tty = true;
	if (!registered) {
		atexit(tty_restore);
		registered = true;
	}
	return 0;
}
