from django import template

register = template.Library()


@register.inclusion_tag("charity/_device_groups.html", takes_context=True)
def light_it_together(context, device):
    """The public device page's link to the device's open group fundings and, for signed-in
    users, to start one. Nothing for devices no group can fund (private, retired, producers)."""
    from charity.selectors import open_groups_for_device
    from meters.models import DeviceKind

    fundable = device.is_public and not device.is_retired and device.kind != DeviceKind.PRODUCER_METER
    return {"show": fundable, "groups": open_groups_for_device(device) if fundable else [], "device": device,
            "user": context.get("user")}
