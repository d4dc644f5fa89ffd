/*
 * freeport.h — a loopback TCP port for a server a test starts.
 */
#ifndef CAIRN_TEST_FREEPORT_H
#define CAIRN_TEST_FREEPORT_H

#include <stdint.h>

/* A port on 127.0.0.1 that nothing held a moment ago, below the kernel's ephemeral range, from
 * this process's own slice of ports (0 if none). */
uint16_t loopback_free_port(void);

#endif
