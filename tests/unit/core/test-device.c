/*
 * Device registry: typed properties with defaults, -device option strings,
 * errors that name the property, help output, realize/reset/destroy order.
 *
 * The device types here exist only in this test.
 */
#include <string.h>

#include "hw/core/device.h"
#include "util/error.h"

typedef struct TestDevice {
    DeviceState parent;
    char *name;
    bool flag;
    uint8_t small;
    uint32_t irq;
    uint64_t big;
    uint64_t size;
    uint32_t counter;
} TestDevice;

static GString *events; /* what the hooks saw, in order */

static bool testdev_realize(DeviceState *dev, GError **errp)
{
    TestDevice *t = (TestDevice *)dev;

    if (t->irq > 15) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "irq %u is out of range (0-15)", t->irq);
        return false;
    }
    g_string_append_printf(events, "realize:%s;", dev->id ? dev->id : "-");
    return true;
}

static void testdev_reset(DeviceState *dev)
{
    g_string_append_printf(events, "reset:%s;", dev->id ? dev->id : "-");
    ((TestDevice *)dev)->counter = 0;
}

static void testdev_unrealize(DeviceState *dev)
{
    g_string_append_printf(events, "unrealize:%s;", dev->id ? dev->id : "-");
}

static const VMStateField testdev_fields[] = {
    {.name = "counter", .type = VMS_U32, .offset = offsetof(TestDevice, counter)},
    {.name = NULL, .type = VMS_END},
};

static const VMStateDescription testdev_vmsd = {
    .name = "test-dev",
    .version_id = 1,
    .minimum_version_id = 1,
    .fields = testdev_fields,
};

static const Property testdev_props[] = {
    {"name", PROP_STRING, offsetof(TestDevice, name), NULL, "a label"},
    {"flag", PROP_BOOL, offsetof(TestDevice, flag), "on", "a switch"},
    {"small", PROP_UINT8, offsetof(TestDevice, small), "7", NULL},
    {"irq", PROP_UINT32, offsetof(TestDevice, irq), "5", "interrupt line"},
    {"big", PROP_UINT64, offsetof(TestDevice, big), "0x100000000", NULL},
    {"size", PROP_SIZE, offsetof(TestDevice, size), "4K", "buffer size"},
    {NULL},
};

static const DeviceClass testdev_class = {
    .name = "test-dev",
    .desc = "device used by the registry tests",
    .instance_size = sizeof(TestDevice),
    .props = testdev_props,
    .realize = testdev_realize,
    .reset = testdev_reset,
    .unrealize = testdev_unrealize,
    .vmsd = &testdev_vmsd,
    .user_creatable = true,
};
DEVICE_TYPE_REGISTER(testdev_class)

static const DeviceClass single_class = {
    .name = "test-single",
    .instance_size = sizeof(DeviceState),
    .user_creatable = true,
    .singleton = true,
};
DEVICE_TYPE_REGISTER(single_class)

static const char *const only_pc[] = {"pc", NULL};
static const DeviceClass board_class = {
    .name = "test-board-only",
    .instance_size = sizeof(DeviceState),
    .machines = only_pc,
};
DEVICE_TYPE_REGISTER(board_class)

static void setup(void)
{
    devices_destroy_all();
    if (events) {
        g_string_free(events, TRUE);
    }
    events = g_string_new(NULL);
}

static void test_defaults_apply(void)
{
    TestDevice *t;

    setup();
    t = (TestDevice *)device_new("test-dev", "d0");
    g_assert_nonnull(t);
    g_assert_null(t->name);
    g_assert_true(t->flag);
    g_assert_cmpuint(t->small, ==, 7);
    g_assert_cmpuint(t->irq, ==, 5);
    g_assert_cmphex(t->big, ==, 0x100000000ULL);
    g_assert_cmpuint(t->size, ==, 4096);
    g_assert_false(t->parent.realized);
    g_assert_null(device_find("d0")); /* not realized yet */
    device_destroy(&t->parent);
    g_assert_null(device_new("no-such-type", NULL));
}

static void test_create_sets_typed_properties(void)
{
    g_autoptr(GError) err = NULL;
    bool help = true;
    TestDevice *t;

    setup();
    t = (TestDevice *)device_create_from_string(
        "test-dev,id=d1,name=a,,b,flag=off,small=255,irq=0xf,big=18446744073709551615,"
        "size=2M",
        &help, &err);
    g_assert_no_error(err);
    g_assert_false(help);
    g_assert_nonnull(t);
    g_assert_cmpstr(t->name, ==, "a,b");
    g_assert_false(t->flag);
    g_assert_cmpuint(t->small, ==, 255);
    g_assert_cmpuint(t->irq, ==, 15);
    g_assert_cmphex(t->big, ==, UINT64_MAX);
    g_assert_cmpuint(t->size, ==, 2 << 20);
    g_assert_true(t->parent.realized);
    g_assert_true(device_find("d1") == &t->parent);
    g_assert_cmpstr(events->str, ==, "realize:d1;");
}

static void expect_error(const char *opts, const char *message)
{
    g_autoptr(GError) err = NULL;
    bool help = true;

    g_assert_null(device_create_from_string(opts, &help, &err));
    g_assert_nonnull(err);
    g_assert_cmpstr(err->message, ==, message);
    g_assert_false(help);
}

static void test_errors_name_the_property(void)
{
    setup();
    expect_error("test-dev,foo=1", "Invalid parameter 'foo'");
    expect_error("test-dev,flag=maybe",
                 "Parameter 'flag' expects 'on' or 'off', not 'maybe'");
    expect_error("test-dev,small=256",
                 "Parameter 'small' expects a value up to 255, not '256'");
    expect_error("test-dev,irq=4294967296",
                 "Parameter 'irq' expects a value up to 4294967295, not '4294967296'");
    expect_error("test-dev,big=-1",
                 "Parameter 'big' expects a non-negative number, not '-1'");
    expect_error("test-dev,irq=16", "irq 16 is out of range (0-15)");
    expect_error("no-such-dev",
                 "'no-such-dev' is not a valid device model name (see -device help)");
    expect_error("id=x", "Parameter 'driver' is missing (see -device help)");
    expect_error("test-board-only",
                 "Device 'test-board-only' can not be created with -device");
    expect_error("test-dev,irq=1,b", "Expected '=' after parameter 'b'");
    /* failed creations leave nothing behind */
    g_assert_cmpstr(events->str, ==, "");
}

static void test_duplicate_id_and_singleton(void)
{
    g_autoptr(GError) err = NULL;

    setup();
    g_assert_nonnull(device_create_from_string("test-dev,id=same", NULL, &err));
    g_assert_no_error(err);
    expect_error("test-dev,id=same", "Duplicate device ID 'same'; pick another id=");
    g_assert_nonnull(device_create_from_string("test-single", NULL, &err));
    g_assert_no_error(err);
    expect_error("test-single",
                 "Only one device of type 'test-single' is supported per machine");
}

static void test_machine_restriction(void)
{
    g_autoptr(GError) err = NULL;
    DeviceState *dev;

    setup();
    /* no machine exists in this test: 'none' does not match "pc" */
    dev = device_new("test-board-only", NULL);
    g_assert_false(device_realize(dev, &err));
    g_assert_cmpstr(err->message, ==,
                    "Device 'test-board-only' is not supported on machine 'none'");
    device_destroy(dev);
}

static void test_set_prop_after_realize_fails(void)
{
    g_autoptr(GError) err = NULL;
    DeviceState *dev;

    setup();
    dev = device_new("test-dev", "late");
    g_assert_true(device_set_prop(dev, "irq", "3", &err));
    g_assert_true(device_realize(dev, &err));
    g_assert_false(device_set_prop(dev, "irq", "4", &err));
    g_assert_cmpstr(err->message, ==,
                    "Property 'irq' cannot be changed after the device is realized");
}

static void count_device(DeviceState *dev, void *opaque)
{
    g_string_append_printf(opaque, "%s,", dev->id);
}

static void test_reset_and_destroy_order(void)
{
    g_autoptr(GString) seen = g_string_new(NULL);

    setup();
    g_assert_nonnull(device_create_from_string("test-dev,id=a", NULL, NULL));
    g_assert_nonnull(device_create_from_string("test-dev,id=b", NULL, NULL));
    ((TestDevice *)device_find("a"))->counter = 9;
    device_foreach(count_device, seen);
    g_assert_cmpstr(seen->str, ==, "a,b,");
    g_string_truncate(events, 0);
    devices_reset_all();
    g_assert_cmpuint(((TestDevice *)device_find("a"))->counter, ==, 0);
    devices_destroy_all();
    g_assert_cmpstr(events->str, ==, "reset:a;reset:b;unrealize:b;unrealize:a;");
    g_assert_null(device_find("a"));
}

static void test_realize_registers_vmstate(void)
{
    g_autoptr(GByteArray) out = g_byte_array_new();
    g_autoptr(GError) err = NULL;

    setup();
    g_assert_nonnull(device_create_from_string("test-dev,id=v0", NULL, NULL));
    g_assert_nonnull(device_create_from_string("test-dev,id=v1", NULL, NULL));
    ((TestDevice *)device_find("v1"))->counter = 0x01020304;
    g_assert_true(vmstate_save_all(out, &err));
    g_assert_no_error(err);
    g_assert_true(device_find("v0")->instance == 0);
    g_assert_true(device_find("v1")->instance == 1);
    /* the second instance's counter is in the stream */
    g_assert_nonnull(memmem(out->data, out->len, "\x01\x02\x03\x04", 4));
    ((TestDevice *)device_find("v1"))->counter = 0;
    g_assert_true(vmstate_load_all(out->data, out->len, &err));
    g_assert_cmphex(((TestDevice *)device_find("v1"))->counter, ==, 0x01020304);
    /* a destroyed device's instance number is reused, its section is gone */
    device_destroy(device_find("v0"));
    g_assert_false(vmstate_load_all(out->data, out->len, &err));
    g_assert_nonnull(strstr(err->message, "unknown section 'test-dev' instance 0"));
    g_assert_nonnull(device_create_from_string("test-dev,id=v2", NULL, NULL));
    g_assert_true(device_find("v2")->instance == 0);
}

static void test_help_lists_types_and_properties(void)
{
    if (g_test_subprocess()) {
        bool help = false;
        g_assert_null(device_create_from_string("help", &help, NULL));
        g_assert_true(help);
        g_assert_null(device_create_from_string("test-dev,help", &help, NULL));
        g_assert_true(help);
        return;
    }
    g_test_trap_subprocess(NULL, 0, 0);
    g_test_trap_assert_passed();
    g_test_trap_assert_stdout(
        "*Available devices:*name \"test-dev\", desc \"device used by "
        "the registry tests\"*");
    g_test_trap_assert_stdout(
        "*test-dev options:*irq=<uint32>*- interrupt line (default: 5)*");
    g_test_trap_assert_stdout("*flag=<bool>*(default: on)*size=<size>*(default: 4K)*");
    /* board-only types are not offered to the user */
    g_test_trap_assert_stdout_unmatched("*test-board-only*");
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/device/props/defaults-apply", test_defaults_apply);
    g_test_add_func("/device/create/sets-typed-properties",
                    test_create_sets_typed_properties);
    g_test_add_func("/device/create/errors-name-the-property",
                    test_errors_name_the_property);
    g_test_add_func("/device/create/duplicate-id-and-singleton-refused",
                    test_duplicate_id_and_singleton);
    g_test_add_func("/device/realize/machine-restriction-enforced",
                    test_machine_restriction);
    g_test_add_func("/device/props/set-after-realize-fails",
                    test_set_prop_after_realize_fails);
    g_test_add_func("/device/lifecycle/reset-in-order-destroy-in-reverse",
                    test_reset_and_destroy_order);
    g_test_add_func("/device/vmstate/realize-registers-section",
                    test_realize_registers_vmstate);
    g_test_add_func("/device/help/lists-types-and-properties",
                    test_help_lists_types_and_properties);
    return g_test_run();
}
