/* Content-based sharing of pages that VMs wrote identically (see share.c). */
#ifndef MB_SHARE_H
#define MB_SHARE_H
void share_pass(void);     /* on CPU 0, with interrupts masked */
void share_report(void);
#endif
