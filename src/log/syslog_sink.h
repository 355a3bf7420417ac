/*
 * syslog(3) behind names that do not clash: <syslog.h> defines LOG_INFO
 * and LOG_DEBUG, which log.h uses as its own levels.
 */
#ifndef EA_LOG_SYSLOG_SINK_H
#define EA_LOG_SYSLOG_SINK_H

#include <stddef.h>

/* openlog(ident, LOG_PID, LOG_AUTHPRIV); ident must outlive the sink. */
void syslog_sink_open(const char *ident);
void syslog_sink_close(void);
/* One message of len bytes at LOG_NOTICE. */
void syslog_sink_write(const char *msg, size_t len);

#endif
