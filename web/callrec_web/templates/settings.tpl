% rebase('layout.tpl', title=_('Settings'), section='settings')
<h1>{{_('Settings')}}</h1>
% include('settings_saved.tpl')
% if error:
<div class="errors" role="alert">
  <p>{{_('The configuration file cannot be used, so nothing can be changed here:')}}</p>
  <p><code>{{error}}</code></p>
  <p>{{_('The recorder keeps running with the settings it started with.')}}</p>
</div>
% end
<section aria-labelledby="change-h">
  <h2 id="change-h">{{_('Change')}}</h2>
  <p>{{_('Each change is checked before it is saved, and applied by a restart of the recorder once no call is in progress: a call is never cut.')}}</p>
  <ul>
    <li><a href="/settings/line">{{_('Analog line')}}</a>
% if config:
      — {{config.line.name}}, {{config.line.country}}
% end
    </li>
    <li><a href="/settings/sip">{{_('SIP line')}}</a>
% if config:
      — {{_('enabled') if config.sip.enabled else _('off')}}
% end
    </li>
    <li><a href="/settings/announcements">{{_('Announcements')}}</a> · <a href="/settings/announcement-languages">{{_('Languages announced')}}</a></li>
    <li><a href="/settings/storage">{{_('Retention and storage')}}</a>
% if config:
      — {{_('kept forever') if config.retention.keep_forever else _('{days} days', days=config.retention.max_age_days)}}
% end
    </li>
    <li><a href="/settings/controller">{{_('Who is responsible')}}</a>
% if config:
      — {{config.controller.name or _('not filled in')}}
% end
    </li>
    <li><a href="/settings/privacy">{{_('Saying no')}}</a></li>
    <li><a href="/settings/language">{{_('Language')}}</a></li>
  </ul>
</section>
<section aria-labelledby="keep-h">
  <h2 id="keep-h">{{_('Backup and diagnostics')}}</h2>
  <ul>
    <li><a href="/settings/backup">{{_('Back up or restore the configuration')}}</a> — {{_('never the recordings nor their keys')}}</li>
    <li><a href="/settings/diagnostics">{{_('Diagnostics bundle')}}</a> — {{_('for support: logs, versions, self-test, configuration without secrets')}}</li>
    <li><a href="/selftest">{{_('Self-test')}}</a></li>
  </ul>
</section>
<section aria-labelledby="users-h">
  <h2 id="users-h">{{_('Users and roles')}}</h2>
  <p>{{_('Accounts are managed on the Users page. Each role can do this:')}}</p>
  <dl class="meta">
    <dt>{{_('Administrator')}}</dt><dd>{{_('everything, including listening to recordings and the access log')}}</dd>
    <dt>{{_('Supervisor')}}</dt><dd>{{_('lists and listens to recordings')}}</dd>
    <dt>{{_('Privacy officer')}}</dt><dd>{{_('recordings, the access log and requests from the people recorded')}}</dd>
    <dt>{{_('Technician')}}</dt><dd>{{_('status, accounts, self-test and settings; never hears a call')}}</dd>
  </dl>
  <p><a href="/users">{{_('Manage users')}}</a></p>
</section>
<section aria-labelledby="net-h">
  <h2 id="net-h">{{_('Network')}}</h2>
% web = snap.get('web') or {}
  <dl class="meta">
    <dt>{{_('Host name')}}</dt><dd><code>{{host}}</code> (<code>{{host}}.local</code>)</dd>
    <dt>{{_('Addresses')}}</dt>
    <dd>
% if addresses:
      <ul>
%   for iface, addr in addresses:
        <li><code>{{addr}}</code> ({{iface}})</li>
%   end
      </ul>
% else:
      {{_('none')}}
% end
    </dd>
    <dt>{{_('Web address')}}</dt><dd>{{web.get('url') or '—'}}</dd>
    <dt>{{_('Certificate fingerprint (SHA-256)')}}</dt><dd><code>{{web.get('fingerprint') or '—'}}</code></dd>
  </dl>
% if web.get('warning'):
  <p class="warning">{{web['warning']}}</p>
% end
  <p class="help">{{_('The network itself (address, Wi-Fi) is set up on the system, not here.')}}</p>
</section>
<section aria-labelledby="time-h">
  <h2 id="time-h">{{_('Time')}}</h2>
  <dl class="meta">
    <dt>{{_('Clock')}}</dt><dd>{{_('synchronised ({source})', source=clock.get('source') or '—') if clock.get('synchronised') else _('not synchronised ({source})', source=clock.get('detail') or clock.get('source') or '—')}}</dd>
    <dt>{{_('Time now')}}</dt><dd><time datetime="{{now.isoformat(timespec='seconds')}}">{{now.strftime('%Y-%m-%d %H:%M:%S')}}</time></dd>
    <dt>{{_('Time zone')}}</dt><dd>{{zone}}</dd>
  </dl>
% if not clock.get('synchronised'):
  <p class="warning" role="status">{{_('The clock has not been synchronised with a time server since the appliance was switched on (it has no clock battery). Recordings made now are marked "time unverified", and retention by age waits. Give the appliance access to an NTP server.')}}</p>
% end
</section>
