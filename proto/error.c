/* SPDX-License-Identifier: MIT */
/*
 * cairn_strerror: the strings of the one error table in include/cairn/error.h, generated from
 * the same list macro so a code and its message cannot drift apart.
 */
#include "cairn/error.h"

const char *cairn_strerror(int code)
{
	switch (code) {
	case CAIRN_OK:
		return "success";
#define CAIRN_XX_(name, value, msg)                                                            \
	case CAIRN_##name:                                                                       \
		return msg;
		CAIRN_ERRNO_MAP(CAIRN_XX_)
#undef CAIRN_XX_
	}
	return "unknown error";
}

const char *cairn_strerror_name(int code)
{
	switch (code) {
	case CAIRN_OK:
		return "CAIRN_OK";
#define CAIRN_XX_(name, value, msg)                                                            \
	case CAIRN_##name:                                                                       \
		return "CAIRN_" #name;
		CAIRN_ERRNO_MAP(CAIRN_XX_)
#undef CAIRN_XX_
	}
	return "CAIRN_UNKNOWN_ERROR";
}
