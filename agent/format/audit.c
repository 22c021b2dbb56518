// SPDX-License-Identifier: GPL-2.0
/*
 * audit.c - audit log (see audit.h).
 */
#include "format/audit.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

struct cmk_audit {
	int fd;			/* -1: no file */
	bool syslog;
	char *path;
};

int cmk_audit_open(const char *path, bool use_syslog, const char *ident,
		   struct cmk_audit **ap, struct cmk_err *e)
{
	struct cmk_audit *a;

	*ap = NULL;
	a = calloc(1, sizeof(*a));
	if (!a)
		return cmk_errf(e, -ENOMEM, "audit: out of memory");
	a->fd = -1;
	if (path) {
		a->path = strdup(path);
		if (!a->path) {
			free(a);
			return cmk_errf(e, -ENOMEM, "audit: out of memory");
		}
		a->fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC |
			     O_NOFOLLOW, 0600);
		if (a->fd < 0) {
			int ret = cmk_errf(e, -errno,
					   "audit log %s: cannot open for appending: %s",
					   path, strerror(errno));

			free(a->path);
			free(a);
			return ret;
		}
	}
	if (use_syslog) {
		openlog(ident ? ident : "cmk", LOG_PID | LOG_NDELAY, LOG_AUTHPRIV);
		a->syslog = true;
	}
	*ap = a;
	return 0;
}

void cmk_audit_close(struct cmk_audit **ap)
{
	struct cmk_audit *a = *ap;

	if (!a)
		return;
	if (a->fd >= 0) {
		fsync(a->fd);
		close(a->fd);
	}
	if (a->syslog)
		closelog();
	free(a->path);
	free(a);
	*ap = NULL;
}

static void now_rfc3339_ms(char out[48])
{
	struct timespec ts;
	struct tm tm;
	char base[24];

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out, 48, "%s.%03uZ", base,
		 (unsigned int)(ts.tv_nsec / 1000000) % 1000);
}

static int add_str(json_object *o, const char *k, const char *v)
{
	json_object *s;

	if (!v)
		return 0;
	s = json_object_new_string(v);
	if (!s || json_object_object_add(o, k, s)) {
		json_object_put(s);
		return -ENOMEM;
	}
	return 0;
}

static int add_int(json_object *o, const char *k, long v)
{
	json_object *n = json_object_new_int64(v);

	if (!n || json_object_object_add(o, k, n)) {
		json_object_put(n);
		return -ENOMEM;
	}
	return 0;
}

/* The context as {"key":"value",...}: it names the object, it is no secret. */
static int add_context(json_object *o, const struct cmk_encctx *c)
{
	json_object *m = json_object_new_object();

	if (!m)
		return -ENOMEM;
	for (size_t i = 0; i < c->n; i++)
		if (add_str(m, c->pairs[i].key, c->pairs[i].value)) {
			json_object_put(m);
			return -ENOMEM;
		}
	if (json_object_object_add(o, "context", m)) {
		json_object_put(m);
		return -ENOMEM;
	}
	return 0;
}

int cmk_audit_log(struct cmk_audit *a, const struct cmk_audit_event *ev,
		  struct cmk_err *e)
{
	json_object *o = json_object_new_object(), *n;
	char when[48];
	const char *line;
	char *buf = NULL;
	int ret, len;

	if (!o)
		return cmk_errf(e, -ENOMEM, "audit: out of memory");
	now_rfc3339_ms(when);
	ret = add_str(o, "time", when) ?:
	      add_str(o, "event", ev->event ? ev->event : "unknown") ?:
	      add_str(o, "device", ev->device) ?:
	      add_str(o, "key_name", ev->key_name) ?:
	      add_str(o, "provider", ev->provider) ?:
	      add_str(o, "key_ref", ev->key_ref) ?:
	      add_str(o, "operation", ev->operation) ?:
	      add_str(o, "outcome", ev->outcome);
	if (!ret && ev->cls != CMK_EC_NONE)
		ret = add_str(o, "error_class", cmk_err_class_name(ev->cls)) ?:
		      add_str(o, "reason", cmk_reason_name(ev->reason));
	if (!ret && ev->latency_ms >= 0) {
		n = json_object_new_int64(ev->latency_ms);
		if (!n || json_object_object_add(o, "latency_ms", n)) {
			json_object_put(n);
			ret = -ENOMEM;
		}
	}
	if (!ret && ev->has_peer)
		ret = add_int(o, "peer_uid", ev->peer_uid) ?:
		      add_int(o, "peer_pid", ev->peer_pid);
	if (!ret && ev->context)
		ret = add_context(o, ev->context);
	ret = ret ?: add_str(o, "request_id", ev->request_id) ?:
		     add_str(o, "message", ev->message);
	if (ret) {
		ret = cmk_errf(e, ret, "audit: out of memory");
		goto out;
	}
	/* Plain output escapes control characters: one event, one line. */
	line = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
					      JSON_C_TO_STRING_NOSLASHESCAPE);
	len = line ? asprintf(&buf, "%s\n", line) : -1;
	if (len < 0) {
		buf = NULL;
		ret = cmk_errf(e, -ENOMEM, "audit: out of memory");
		goto out;
	}
	if (a->syslog)
		syslog(LOG_NOTICE, "%s", line);
	if (a->fd >= 0) {
		ssize_t w;

		do {
			w = write(a->fd, buf, (size_t)len);
		} while (w < 0 && errno == EINTR);
		if (w != len) {
			ret = cmk_errf(e, w < 0 ? -errno : -EIO,
				       "audit log %s: write failed: %s", a->path,
				       w < 0 ? strerror(errno) : "short write");
			goto out;
		}
		if (ev->important && fsync(a->fd)) {
			ret = cmk_errf(e, -errno, "audit log %s: fsync failed: %s",
				       a->path, strerror(errno));
			goto out;
		}
	}
out:
	free(buf);
	json_object_put(o);
	return ret;
}
