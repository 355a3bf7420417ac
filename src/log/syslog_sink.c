/*
 * syslog(3) for the audit trail, kept apart from log.h (see the header).
 */
#include <syslog.h>

#include "log/syslog_sink.h"

void
syslog_sink_open(const char *ident)
{
	openlog(ident, LOG_PID, LOG_AUTHPRIV);
}

void
syslog_sink_close(void)
{
	closelog();
}

void
syslog_sink_write(const char *msg, size_t len)
{
	syslog(LOG_NOTICE, "%.*s", (int)len, msg);
}
