/* SPDX-License-Identifier: GPL-2.0 */
/*
 * stats.h - the core's generic stats_show(), declared only for the files
 * that use it, as a subsystem header is.  The drivers do not include it:
 * each has a static stats_show() of its own (a "static declaration follows
 * non-static" error otherwise).
 */
#ifndef STATS_H
#define STATS_H

#include "sample.h"

ssize_t stats_show(struct sample_device *dev, struct device_attribute *attr, char *buf);

#endif /* STATS_H */
