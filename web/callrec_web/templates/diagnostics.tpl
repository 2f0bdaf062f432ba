% rebase('layout.tpl', title=_('Diagnostics'), section='settings')
<p><a href="/settings">{{_('← Settings')}}</a></p>
<h1>{{_('Diagnostics')}}</h1>
<p>{{_('A file to send to whoever supports this box: versions of the software and the system, the status and its faults, the storage report, the last self-test, the configuration without its credentials, and the recent log.')}}</p>
<p>{{_('It holds no recording, phone number, name, key, password or session: credentials are removed, the controller\'s identity and contacts masked, and number-like text is removed from the logs.')}}</p>
<section aria-labelledby="selftest-h">
  <h2 id="selftest-h">{{_('Self-test')}}</h2>
% if report:
  <p>{{_('The bundle includes the last self-test, run {when}.', when=local_time(report.get('started_at'), True) or report.get('started_at'))}}</p>
% else:
  <p>{{_('No self-test has run since the recorder started: the bundle will say so.')}}</p>
% end
  <p>{{_('Making a bundle never runs a self-test (it plays a tone on the line).')}} <a href="/selftest">{{_('Run a self-test first')}}</a></p>
</section>
% if not has_ring:
<p class="help">{{_('This process keeps no recent log: the bundle will say so.')}}</p>
% end
<form method="post" action="/settings/diagnostics">
  <input type="hidden" name="csrf_token" value="{{csrf}}">
  <button type="submit">{{_('Download the diagnostics bundle')}}</button>
</form>
<p class="help">{{_('When the web UI is down, from a shell:')}} <code>callrec diagnostics -o FILE</code></p>
