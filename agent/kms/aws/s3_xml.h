/* SPDX-License-Identifier: GPL-2.0 */
/*
 * s3_xml.h - the few elements the S3 client reads from S3's XML answers
 * (UploadId, Code, Message, RequestId), by a small strict reader rather
 * than an XML library: S3's answers are flat and the reader is fuzzed
 * (tests/fuzz/fuzz_s3.c).
 */
#ifndef CMK_S3_XML_H
#define CMK_S3_XML_H

#include <stdbool.h>
#include <stddef.h>

#include "core/err.h"

/**
 * struct cmk_s3_xml_field - one element to pick out of an S3 answer
 * @name: its name, a child of the root element
 * @val: its text, entities decoded, NUL-terminated
 * @len: size of @val
 * @found: it was there
 */
struct cmk_s3_xml_field {
	const char *name;
	char *val;
	size_t len;
	bool found;
};

/*
 * cmk_s3_xml_parse() - a strict reading of the small XML documents S3
 * answers with: an optional XML declaration, one root element (its name
 * into @root), children nested at most 8 deep, text with the five
 * predefined entities and character references to ASCII, and nothing
 * after the root.  No comments, CDATA, DTDs or processing instructions
 * (S3 sends none).  The text of each @f element that is a direct child of
 * the root and has no element inside it is copied to its @val (first one
 * wins); a value longer than @len is an error.  -EPROTO for anything
 * else, with what and where in @e.
 */
int cmk_s3_xml_parse(const char *doc, size_t len, char *root, size_t root_len,
		     struct cmk_s3_xml_field *f, size_t nf, struct cmk_err *e);

#endif /* CMK_S3_XML_H */
