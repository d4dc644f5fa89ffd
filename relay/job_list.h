/* SPDX-License-Identifier: MIT */
/*
 * A doubly linked list of storage jobs (through their prev and next fields), which both storage
 * engines (storage.c, memstorage.c) keep their queues in. Private to the engines.
 */
#ifndef CAIRN_RELAY_JOB_LIST_H
#define CAIRN_RELAY_JOB_LIST_H

#include <stddef.h>

#include "storage.h"

struct job_list {
	struct storage_job *head, *tail;
};

static inline void list_append(struct job_list *l, struct storage_job *job)
{
	job->next = NULL;
	job->prev = l->tail;
	if (l->tail != NULL)
		l->tail->next = job;
	else
		l->head = job;
	l->tail = job;
}

static inline void list_remove(struct job_list *l, struct storage_job *job)
{
	if (job->prev != NULL)
		job->prev->next = job->next;
	else
		l->head = job->next;
	if (job->next != NULL)
		job->next->prev = job->prev;
	else
		l->tail = job->prev;
	job->prev = job->next = NULL;
}

#endif
