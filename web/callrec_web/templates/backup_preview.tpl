% rebase('layout.tpl', title=_('Restore a backup'), section='settings')
<p><a href="/settings/backup">{{_('← Backup and restore')}}</a></p>
<h1>{{_('Restore a backup')}}</h1>
<p role="status">{{_('The backup is valid (made {when} by callrec {version}).', when=preview.manifest.get('created_at', '?'), version=preview.manifest.get('callrec_version', '?'))}} {{_('Nothing has changed yet.')}}</p>
<section aria-labelledby="config-h">
  <h2 id="config-h">{{_('Configuration')}}</h2>
% if preview.identical_text:
  <p>{{_('The configuration file in the backup is identical to this box\'s.')}}</p>
% elif not preview.changed:
  <p>{{_('No setting differs; only the file\'s comments or layout do.')}}</p>
% else:
  <p>{{_('{n} settings differ and would take the backup\'s values:', n=len(preview.changed))}}</p>
  <ul class="keys">
%   for name in preview.changed:
    <li><code>{{name}}</code></li>
%   end
  </ul>
% end
</section>
<section aria-labelledby="list-h">
  <h2 id="list-h">{{_('Do-not-record list')}}</h2>
% if preview.plan is None:
  <p>{{_('The backup does not hold the list: this box\'s list stays as it is.')}}</p>
% else:
  <ul>
    <li>{{_('Entries to add: {n}', n=len(preview.plan.add))}}</li>
    <li>{{_('Already on this box\'s list: {n}', n=preview.plan.present)}}</li>
    <li>{{_('On this box\'s list only, kept: {n}', n=preview.plan.kept)}}</li>
  </ul>
% end
</section>
<form method="post" action="/settings/backup/apply" class="stack">
  <input type="hidden" name="csrf_token" value="{{csrf}}">
  <input type="hidden" name="restore" value="{{key}}">
  <p>{{_('The recorder applies the restored configuration when no call is in progress.')}}</p>
  <button type="submit">{{_('Restore this backup')}}</button>
</form>
<form method="post" action="/settings/backup/cancel" class="stack">
  <input type="hidden" name="csrf_token" value="{{csrf}}">
  <button type="submit" class="secondary">{{_('Cancel')}}</button>
</form>
