/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * For test and benchmark programs that start daemons (wireguard-go detaches, so the program
 * makes itself a subreaper with prctl(PR_SET_CHILD_SUBREAPER) to keep them as children).
 */
#ifndef NX_TESTS_CHILDREN_H
#define NX_TESTS_CHILDREN_H

/* Stops what this process started and still runs, by pid (SIGTERM), and reaps them, waiting
 * at most 5 s. */
void nx_test_stop_children(void);

#endif /* NX_TESTS_CHILDREN_H */
