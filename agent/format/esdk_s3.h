/* SPDX-License-Identifier: GPL-2.0 */
/*
 * esdk_s3.h - sealed storage objects straight to and from S3 (s3.h), so
 * that PostgreSQL's archive_command and restore_command need no other
 * tool.
 *
 * Sealing streams the ESDK message (esdk.h) into an S3 upload as it is
 * written (a pipe to an upload thread): memory is one frame plus one
 * part, whatever the size.  The object becomes visible only when the
 * whole message was sealed and uploaded; on any failure the multipart
 * upload is aborted.  An object already under the key is never replaced:
 * the upload is made conditional (If-None-Match: *), and when S3 says one
 * exists, the existing object is opened with the same keys and context
 * and its plaintext compared with the input, read again from the start.
 * Identical (the archive_command rule for a segment archived twice, e.g.
 * after a crash): success, *@existed set.  Different, not authentic, or a
 * different context: -EEXIST.  An input that cannot be read again (a
 * pipe) cannot be compared: -EEXIST too.
 *
 * Opening streams GetObject into cmk_esdk_open_from() (a download thread
 * writes into a pipe), so everything esdk.h says about verification holds:
 * the caller still writes a file under a temporary name and links it only
 * on success.  S3's error (NoSuchKey, AccessDenied) is the one reported
 * when the download failed, not the truncated message it left.
 */
#ifndef CMK_ESDK_S3_H
#define CMK_ESDK_S3_H

#include <stdbool.h>

#include "core/encctx.h"
#include "core/err.h"
#include "format/esdk.h"

/*
 * cmk_esdk_seal_s3() - cmk_esdk_seal() of @in_fd into the object @url
 * ("s3://bucket/key"), or cmk_esdk_seal_with() when @kg is not NULL (the
 * agent's data keys; @wk is then unused); @src opens an existing object
 * for the comparison.
 */
int cmk_esdk_seal_s3(int in_fd, const char *url,
		     const struct cmk_esdk_keygen *kg,
		     const struct cmk_esdk_wrapkey *wk,
		     const struct cmk_encctx *ctx,
		     const struct cmk_esdk_seal_opts *opts,
		     const struct cmk_esdk_keysource *src,
		     struct cmk_esdk_info *info, bool *existed,
		     struct cmk_err *e);

/* cmk_esdk_open_s3() - cmk_esdk_open_from() of the object @url. */
int cmk_esdk_open_s3(const char *url, int out_fd,
		     const struct cmk_esdk_keysource *src,
		     const struct cmk_encctx *expect,
		     struct cmk_esdk_info *info, struct cmk_err *e);

#endif /* CMK_ESDK_S3_H */
