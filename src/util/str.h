/*
 * Small string helpers.
 */
#ifndef EA_UTIL_STR_H
#define EA_UTIL_STR_H

#include <stddef.h>

/* 1 if the n bytes at s are valid UTF-8 (no overlongs, no surrogates). */
int str_utf8_valid(const char *s, size_t n);

/* 1 if s has a C0 control character, DEL, or a C1 control (U+0080..9F). */
int str_has_control(const char *s, size_t n);

/* Case-insensitive ASCII comparison of a and b; 1 when equal. */
int str_ieq(const char *a, const char *b);

/* Writes n bytes of src as 2n lowercase hex digits and a NUL into dst. */
void str_hex(char *dst, const unsigned char *src, size_t n);

#endif
