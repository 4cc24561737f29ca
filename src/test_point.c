/*
 * Named points where cdp's own kill tests stop it: a SIGKILL must find cdp at
 * a chosen byte of its work (a manifest half-written, a changelog written and
 * not committed, a push under way), not wherever a timer happens to fire.
 *
 * Outside cdp's test suite CDP_TEST_PAUSE is unset and a point costs one
 * getenv. See tests/e2e/kill_resume.sh.
 */
#include "host.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int released; /* a process pauses once: after that its points are passed */

void cdp_test_point(const char *kind, const char *detail)
{
	const char *want = getenv("CDP_TEST_PAUSE");
	const char *file = getenv("CDP_TEST_PAUSE_FILE");
	if (released || want == NULL || *want == '\0' || file == NULL || *file == '\0')
		return;
	size_t klen = strlen(kind);
	if (strncmp(want, kind, klen) != 0 || (want[klen] != '\0' && want[klen] != ':'))
		return;
	if (want[klen] == ':' && strstr(detail ? detail : "", want + klen + 1) == NULL)
		return;
	/* Written whole, then renamed: the test reads the pid only from a whole file. */
	char tmp[4096];
	if (snprintf(tmp, sizeof tmp, "%s.tmp", file) >= (int)sizeof tmp)
		return;
	FILE *f = fopen(tmp, "w");
	if (f == NULL)
		return;
	fprintf(f, "%ld %s %s\n", (long)getpid(), kind, detail ? detail : "");
	if (fclose(f) != 0 || rename(tmp, file) != 0)
		return;
	struct timespec tick = {0, 10 * 1000 * 1000};
	while (access(file, F_OK) == 0)
		nanosleep(&tick, NULL);
	released = 1;
}
