/* The virtual subnet switch: ports, MAC learning, unicast / flood. See vnet.h. */
#include "vnet.h"
#include "mb_string.h"

void vnet_switch_init(struct vnet_switch *sw)
{
	memset(sw, 0, sizeof(*sw));
}

int vnet_switch_attach(struct vnet_switch *sw, struct vnet *v)
{
	int port = -1;
	spin_lock(&sw->lock);
	for (int i = 0; i < VNET_MAX_PORTS && port < 0; i++)
		if (!sw->port[i])
			port = i;
	if (port >= 0) {
		sw->port[port] = v;
		v->sw = sw;
		v->port = port;
	}
	spin_unlock(&sw->lock);
	return port;
}

void vnet_switch_detach(struct vnet_switch *sw, struct vnet *v)
{
	spin_lock(&sw->lock);
	if (v->port >= 0 && v->port < VNET_MAX_PORTS && sw->port[v->port] == v) {
		for (int i = 0; i < VNET_FDB_SIZE; i++)
			if (sw->fdb[i].valid && sw->fdb[i].port == v->port)
				sw->fdb[i].valid = 0;
		sw->port[v->port] = 0;
	}
	v->sw = 0;
	v->port = -1;
	v->blocked_on = 0;
	struct vnet *wake[VNET_MAX_PORTS];
	unsigned n = 0;
	for (int p = 0; p < VNET_MAX_PORTS; p++)
		if (sw->port[p] && sw->port[p]->blocked_on == v)
			wake[n++] = sw->port[p];
	spin_unlock(&sw->lock);
	for (unsigned k = 0; k < n; k++) {      /* nobody will take their frames: go on */
		wake[k]->blocked_on = 0;
		vnet_tx_run(wake[k]);
	}
}

static int is_group(const uint8_t mac[6]) { return mac[0] & 1; }

static int fdb_find(struct vnet_switch *sw, const uint8_t mac[6])
{
	for (int i = 0; i < VNET_FDB_SIZE; i++)
		if (sw->fdb[i].valid && !memcmp(sw->fdb[i].mac, mac, 6))
			return i;
	return -1;
}

/* Called with sw->lock held. A source seen on a port moves there (a VM restarted with another
 * device keeps its address); a full table replaces its oldest entry. */
static void learn(struct vnet_switch *sw, const uint8_t mac[6], int port)
{
	if (is_group(mac))
		return;                 /* a group address as a source is bogus: never learnt */
	int i = fdb_find(sw, mac);
	if (i >= 0 && port == VNET_UPLINK_PORT && sw->fdb[i].port != VNET_UPLINK_PORT) {
		sw->filtered++;         /* the outside claims a VM's address: not taken */
		return;
	}
	if (i < 0) {
		uint32_t oldest = UINT32_MAX;
		for (int k = 0; k < VNET_FDB_SIZE; k++) {
			if (!sw->fdb[k].valid) {
				i = k;
				break;
			}
			if (sw->fdb[k].age < oldest) {
				oldest = sw->fdb[k].age;
				i = k;
			}
		}
		memcpy(sw->fdb[i].mac, mac, 6);
		sw->fdb[i].valid = 1;
	}
	sw->fdb[i].port = (int8_t)port;
	sw->fdb[i].age = ++sw->clock;
}

/* The uplink takes f (from a guest's port); counted on the sender. */
static unsigned to_uplink(const struct vnet_uplink *up, const struct vnet_frame *f)
{
	if (!up->send(up->ctx, f))
		return 0;
	if (f->from) {
		f->from->st.uplink_tx_frames++;
		f->from->st.uplink_tx_bytes += f->len;
	}
	return 1;
}

unsigned vnet_switch_send(struct vnet_switch *sw, const struct vnet_frame *f)
{
	struct vnet *to[VNET_MAX_PORTS];
	unsigned n = 0;
	int from = f->from ? f->from->port : f->data ? VNET_UPLINK_PORT : -1;
	const struct vnet_uplink *up = 0;
	spin_lock(&sw->lock);
	if (from >= 0)
		learn(sw, f->src, from);
	int i = is_group(f->dst) ? -1 : fdb_find(sw, f->dst);
	if (i >= 0) {
		int p = sw->fdb[i].port;
		if (p == from)
			sw->filtered++;         /* for the sender itself: a switch does not reflect */
		else if (p == VNET_UPLINK_PORT)
			up = sw->uplink;
		else if (sw->port[p])
			to[n++] = sw->port[p];
		else
			sw->filtered++;
		sw->unicast++;
	} else {
		for (int p = 0; p < VNET_MAX_PORTS; p++)
			if (p != from && sw->port[p])
				to[n++] = sw->port[p];
		if (from != VNET_UPLINK_PORT)
			up = sw->uplink;
		sw->flooded++;
	}
	spin_unlock(&sw->lock);
	unsigned got = 0;
	if (up)
		got += to_uplink(up, f);
	if (i >= 0 && n == 1 && f->from && !f->from->force_drop) {
		int r = vnet_deliver_or_wait(to[0], f);
		if (r == 2) {
			f->from->blocked_on = to[0];  /* the sender's TX stops here until to[0] has room */
			f->from->blocked_ticks = 0;
			return 0;
		}
		return (unsigned)r;
	}
	for (unsigned k = 0; k < n; k++)
		got += (unsigned)vnet_deliver(to[k], f);
	return got;
}

void vnet_switch_unblock(struct vnet_switch *sw, struct vnet *rx)
{
	struct vnet *wake[VNET_MAX_PORTS];
	unsigned n = 0;
	spin_lock(&sw->lock);
	for (int p = 0; p < VNET_MAX_PORTS; p++)
		if (sw->port[p] && sw->port[p]->blocked_on == rx)
			wake[n++] = sw->port[p];
	spin_unlock(&sw->lock);
	for (unsigned k = 0; k < n; k++) {
		wake[k]->blocked_on = 0;
		vnet_tx_run(wake[k]);
	}
}

void vnet_switch_tick(struct vnet_switch *sw)
{
	struct vnet *late[VNET_MAX_PORTS];
	unsigned n = 0;
	spin_lock(&sw->lock);
	for (int p = 0; p < VNET_MAX_PORTS; p++)
		if (sw->port[p] && sw->port[p]->blocked_on && ++sw->port[p]->blocked_ticks >= 2)
			late[n++] = sw->port[p];
	spin_unlock(&sw->lock);
	for (unsigned k = 0; k < n; k++) {
		late[k]->force_drop = 1;          /* this run drops the frame the receiver never took */
		vnet_tx_run(late[k]);
	}
}

unsigned vnet_switch_from_uplink(struct vnet_switch *sw, const uint8_t *data, uint32_t len)
{
	if (len < VNET_ETH_HLEN || len > VNET_GSO_FRAME_MAX)
		return 0;
	struct vnet_frame f;
	memset(&f, 0, sizeof(f));       /* no offloads: the header says nothing */
	f.data = data;
	f.len = len;
	memcpy(f.dst, data, 6);
	memcpy(f.src, data + 6, 6);
	f.npieces = 1;
	f.piece[0] = (struct vnet_piece){ 0, len };
	return vnet_switch_send(sw, &f);
}
