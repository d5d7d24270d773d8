"""The TelestackDB Pulumi program: settings, service specs and the renderers that realise them."""
