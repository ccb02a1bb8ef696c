/* Console multiplexing on the host's one PL011.
 *
 * The byte stream in both directions carries several channels: channel 0 is the monitor,
 * channel v+1 is the console of VM number v (its index in the host image). The byte
 * MB_CON_ESC followed by (MB_CON_CHAN0 + c) switches the current channel to c; MB_CON_ESC
 * followed by MB_CON_ESC is one literal MB_CON_ESC byte on the current channel. The stream
 * starts on channel 0. The monitor writes lines that begin with "@mb " on channel 0 for the
 * loader to parse (events, stats); everything else on channel 0 is for monitor.log. */
#ifndef MIRRORBALL_CONSOLE_PROTO_H
#define MIRRORBALL_CONSOLE_PROTO_H

#define MB_CON_ESC    0x10   /* DLE */
#define MB_CON_CHAN0  0x20   /* channel c is encoded as 0x20 + c, c < 0xC0 */

/* Machine-readable monitor lines (channel 0):
 *   @mb boot cpus=<n> nodes=<n> mem=<bytes>
 *   @mb vm-start <index> <name>
 *   @mb vm-exit <index> <name> <reason>        reason: poweroff | reset | crash | error
 *   @mb vm-restart <index> <name>               the VM starts again (a vm-start follows)
 *   @mb stats <one-line JSON object for one VM> at each exit
 *   @mb live <one-line JSON object for one VM>  every second while it runs
 *   @mb error <text>                           the monitor refused the host image
 *   @mb all-done                               every VM is off; the monitor powers off next
 */

#endif
