/*
 * Character devices: the byte pipes that QMP, the qtest server and the serial
 * port use. Backends: socket (unix, server=on|off, wait=on|off), stdio, file,
 * null. Input is delivered in the main loop with the big lock held.
 */
#ifndef SYSTEM_CHARDEV_H
#define SYSTEM_CHARDEV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <glib.h>

typedef struct Chardev Chardev;

typedef enum {
    CHARDEV_EVENT_OPENED, /* a peer connected (socket) or the device opened */
    CHARDEV_EVENT_CLOSED, /* the peer went away */
} ChardevEvent;

typedef void (*ChardevReadFn)(void *opaque, const uint8_t *buf, size_t len);
typedef void (*ChardevEventFn)(void *opaque, ChardevEvent event);

/* "-chardev socket,id=c0,path=/tmp/s,server=on,wait=off" */
Chardev *chardev_new_from_string(const char *optstr, GError **errp);
/* "-qmp unix:PATH,server=on,wait=off", "-serial stdio|file:PATH|null|chardev:ID" */
Chardev *chardev_new_from_legacy(const char *spec, const char *id, GError **errp);
Chardev *chardev_find(const char *id);
const char *chardev_id(const Chardev *chr);

/* One frontend per chardev. */
bool chardev_set_handlers(Chardev *chr, ChardevReadFn read, ChardevEventFn event,
                          void *opaque, GError **errp);
/* Write everything; a socket peer that is slow to read gets it from the main
 * loop later, in order. Bytes are dropped when nobody is connected. Any
 * thread. */
void chardev_write(Chardev *chr, const void *buf, size_t len);
void chardev_printf(Chardev *chr, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
bool chardev_is_connected(const Chardev *chr);
/* Drop the current connection (a socket server then accepts the next one). */
void chardev_disconnect(Chardev *chr);
void chardev_close_all(void);
void chardev_list_help(void);
/* Human description ("unix:/tmp/s,server=on", "stdio") for messages. */
const char *chardev_label(const Chardev *chr);

/* The chardev of serial port i (-serial), or NULL when it has none. */
Chardev *serial_hd(int i);
void serial_hd_set(int i, Chardev *chr);
#define SERIAL_HD_MAX 4

#endif
