/*
 * log.c: mediabatch's logging layer over rte_log.
 *
 * One rte_log type, "mediabatch", registered by a constructor so that logging works before
 * EAL is up (rte_log falls back to stderr then). Each line is formatted into a stack buffer
 * with its module prefix and handed to rte_log() whole, so concurrent lines never interleave.
 * Any thread may call any function here.
 */
#include "mb_log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <strings.h>

static int g_log_type = -1;

RTE_INIT(mb_log_register_type)
{
	g_log_type = rte_log_register_type_and_pick_level("mediabatch", RTE_LOG_NOTICE);
	if (g_log_type < 0)
		g_log_type = RTE_LOGTYPE_USER1;
}

int
mb_log_type(void)
{
	return g_log_type;
}

void
mb_log(unsigned int level, const char *module, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int n;

	if (!rte_log_can_log(g_log_type, level))
		return;
	n = snprintf(line, sizeof(line), "mediabatch: %s: ", module);
	if (n < 0 || (size_t)n >= sizeof(line))
		n = 0;
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	va_end(ap);
	rte_log(level, g_log_type, "%s\n", line);
}

int
mb_log_set_level(unsigned int level)
{
	if (level < RTE_LOG_EMERG || level > RTE_LOG_DEBUG)
		return -EINVAL;
	return rte_log_set_level(g_log_type, level);
}

unsigned int
mb_log_get_level(void)
{
	int level = rte_log_get_level(g_log_type);

	return level < 0 ? RTE_LOG_NOTICE : (unsigned int)level;
}

int
mb_log_parse_level(const char *name)
{
	static const struct {
		const char *name;
		unsigned int level;
	} names[] = {
		{"error", RTE_LOG_ERR},	   {"err", RTE_LOG_ERR},       {"warning", RTE_LOG_WARNING},
		{"warn", RTE_LOG_WARNING}, {"notice", RTE_LOG_NOTICE}, {"info", RTE_LOG_INFO},
		{"debug", RTE_LOG_DEBUG},
	};
	char *end;
	long v;

	if (name == NULL || *name == '\0')
		return -EINVAL;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcasecmp(name, names[i].name) == 0)
			return (int)names[i].level;
	v = strtol(name, &end, 10);
	if (*end != '\0' || v < RTE_LOG_EMERG || v > RTE_LOG_DEBUG)
		return -EINVAL;
	return (int)v;
}

void
mb_log_set_stream(FILE *stream)
{
	rte_openlog_stream(stream);
}
