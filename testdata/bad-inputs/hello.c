/* SPDX-License-Identifier: GPL-2.0 */
/* A user-space program: an ELF with a symbol table that is not a kernel. */
#include <stdio.h>

int main(void)
{
	puts("hello");
	return 0;
}
